enum WebPage { static let html = "<html></html>" }
